from django.urls import path

from lowcarbon.market import views

app_name = "market"

urlpatterns = [
    path("", views.board, name="board"),
    path("listings/new/", views.new_listing, name="new_listing"),
    path("requests/new/", views.new_buy_request, name="new_buy_request"),
    path("orders/<str:number>/", views.order_detail, name="order"),
    path("orders/<str:number>/cancel/", views.cancel_order, name="cancel_order"),
    path("auctions/new/", views.new_auction, name="new_auction"),
    path("auctions/<str:number>/", views.auction_detail, name="auction"),
    path("auctions/<str:number>/cancel/", views.cancel_auction, name="cancel_auction"),
    path("auctions/<str:number>/close/", views.close_auction, name="close_auction"),
    path("deals/new/", views.new_deal, name="new_deal"),
    path("deals/<str:number>/", views.deal_detail, name="deal"),
    path("trades/<str:number>/", views.trade_detail, name="trade"),
    path("mine/", views.mine, name="mine"),
    path("admin/", views.admin, name="admin"),
]
